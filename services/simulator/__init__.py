"""A fleet of exercise bikes producing the real raw feed format, and capture replay."""
