"""The server-rendered org-chart canvas: card layout, pages and fragments (canvas spec)."""
