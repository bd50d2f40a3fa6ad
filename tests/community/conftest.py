"""Fixtures shared by the community tests."""

import pytest
from channels.layers import get_channel_layer


@pytest.fixture(params=["memory", "redis"])
async def layer_kind(request, settings):
    """Each test twice: on the in-memory channel layer and on the real Redis one."""
    if request.param == "memory":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    yield request.param
    await get_channel_layer().flush()
