"""The REST API for analysts: rides and riders over HTTP, authenticated, private by default."""
