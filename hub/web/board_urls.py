"""Routes of the board pages (names are in the ``web`` namespace)."""

from django.urls import path

from hub.web import board_views, hospital_views

urlpatterns = [
    path("board/", board_views.board, name="board"),
    path("board/tiles/", board_views.board_tiles, name="board-tiles"),
    path("hospitals/<str:site_code>/", hospital_views.hospital, name="hospital"),
]
