"""Page URLs of the tracker app (server-rendered, no JavaScript needed)."""

urlpatterns: list = []
