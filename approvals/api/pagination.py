from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """?page=N&page_size=M; `count`, `next` and `previous` come with every page."""

    page_size_query_param = "page_size"
    max_page_size = 200

    @property
    def page_size(self) -> int:  # type: ignore[override]
        return settings.API_PAGE_SIZE
