import re

from devgem.domain import naming

CLOUD_RUN_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def test_service_names_are_valid_cloud_run_names() -> None:
    for app_name in ["Shop", "my_app!!", "123numbers", "---", "ünïcödé app", "x" * 200, ""]:
        name = naming.service_name(app_name, "tenant-a", "app1")
        assert CLOUD_RUN_NAME.match(name), name
        assert len(name) <= naming.MAX_SERVICE_NAME


def test_service_names_are_stable_per_tenant_and_app() -> None:
    """Pinned: the name is reserved and routed, so a change here would orphan every existing service."""
    assert naming.service_name("shop", "t1", "a1") == "shop-xjyzlemd"
    assert naming.service_name("shop", "t1", "a2") == "shop-vppxbxat"


def test_same_app_name_in_two_tenants_gives_two_services() -> None:
    assert naming.service_name("shop", "t1", "a1") != naming.service_name("shop", "t2", "a1")


def test_a_retry_after_a_clash_gives_a_new_name() -> None:
    assert naming.service_name("shop", "t1", "a1", 0) != naming.service_name("shop", "t1", "a1", 1)


def test_revision_is_named_after_the_deployment() -> None:
    rev = naming.revision_name("shop-abcdefgh", "0123456789ab")
    assert rev == "shop-abcdefgh-0123456789ab"
    assert len(rev) <= 63 and CLOUD_RUN_NAME.match(rev)


def test_app_name_from_repo() -> None:
    assert naming.app_name_from_repo("https://github.com/ana/shop.git") == "shop"
    assert naming.app_name_from_repo("/srv/repos/hello-python/") == "hello-python"
