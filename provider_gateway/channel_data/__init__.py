"""Channel data API: `/v1/objects/.../channel_data/{channel_id}` and `/v1/users/...`."""
