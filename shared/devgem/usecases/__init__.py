"""One module per use case; entry points in functions/ call exactly one of them."""
