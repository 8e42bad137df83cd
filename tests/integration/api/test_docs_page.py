"""`/api/docs` works without the internet: every asset it names is served by the API."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def test_docs_page_names_only_local_assets_and_serves_them(world):
    page = world.client.get("/api/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    for url in urls:
        assert not urlsplit(url).netloc, f"the docs page loads {url} from another host"
        asset = world.client.get(url)
        assert asset.status_code == 200, url
    kinds = {urlsplit(u).path.rsplit(".", 1)[-1] for u in urls}
    assert {"js", "css", "json"} <= kinds
    # The schema the page renders is the API's own, and it says where it lives.
    assert world.client.get("/api/openapi.json").json()["info"]["title"] == "HoloVitals Sync API"
