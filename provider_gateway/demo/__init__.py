"""`provider-gateway demo`: the service with bundled Slack and Microsoft simulators and a page.

Nothing here is used by `serve`; it exists so a newcomer can watch both install flows, the
channel pickers and disconnect on a laptop, with no Slack app and no Azure tenant.
"""
