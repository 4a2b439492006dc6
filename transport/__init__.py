"""HTTP and WebSocket transport around the GraphQL schema: what a request may be
before any GraphQL work is done."""
