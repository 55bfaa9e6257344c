"""`python -m provider_gateway` runs the same CLI as the `provider-gateway` script."""

from provider_gateway.cli import main

raise SystemExit(main())
