"""HTTP plumbing the providers share: app keys, middlewares, CORS, idempotency, wire forms,
the OAuth popup page, metrics, logs and the operations endpoints. Below the providers: nothing
here imports a provider package."""
