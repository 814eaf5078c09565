"""Gridding: samples and geological features onto the grid (IDW, buffer density and distance)."""
