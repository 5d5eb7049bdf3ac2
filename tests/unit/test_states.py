import pytest

from devgem.domain.deployment import TERMINAL, Status, can_move


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("queued", "building"),
        ("queued", "deploying"),
        ("building", "deploying"),
        ("deploying", "live"),
        ("queued", "failed"),
        ("building", "cancelled"),
        ("building", "superseded"),
    ],
)
def test_moves_forward(current: str, target: str) -> None:
    assert can_move(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [("building", "queued"), ("deploying", "building"), ("building", "building"), ("deploying", "deploying")],
)
def test_never_moves_back_or_stays(current: str, target: str) -> None:
    assert not can_move(current, target)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_states_never_move(terminal: Status) -> None:
    assert all(not can_move(terminal, target) for target in Status)


def test_unknown_state_is_an_error() -> None:
    with pytest.raises(ValueError):
        can_move("exploded", "live")
