"""Typed read functions shared by every reader (API, dashboard, daily report).

Each module holds one aggregate's reads as keyword-only functions taking a psycopg 3
connection first (see services.common.pool). Routes, pages and report sections call these;
none of them writes SQL of its own.
"""
