"""JSON Schemas of the mesh policy files, shipped inside the package as ``mesh_proxy.schemas``."""
