"""Shell views: the landing redirect. Each page lives in its own module."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from hub.web.navigation import landing_url


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to the first page their role may open."""
    url = landing_url(request.user)
    if url is None:
        return render(request, "web/no_access.html", status=403)
    return redirect(url)
