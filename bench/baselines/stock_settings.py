"""Settings for the stock Channels baseline: the project's settings (so the same database,
sessions and users sign in), with the Channels tutorial's channel layer: ``RedisChannelLayer``
with its defaults (capacity 100 per channel, expiry 60 s)."""

from community.settings import *  # noqa: F403 -- the baseline is the project minus its chat path
from community.settings import CHANNEL_LAYER_URL, env

ASGI_APPLICATION = "bench.baselines.stock_channels.application"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [CHANNEL_LAYER_URL],
            "prefix": env.str("CHANNEL_LAYER_PREFIX", default="asgi") + ".stock",
        },
    }
}
