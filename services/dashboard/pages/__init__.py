"""The dashboard's pages: each module has `layout(ctx, search)` and `register(app, ctx)`."""
