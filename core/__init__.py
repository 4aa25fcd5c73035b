"""oco2peak core library: OCO-2 Lite files -> Parquet cache -> plume detection -> emission -> attribution.

No Streamlit import anywhere in this package: the workbench (``workbench/``) depends on it, never the reverse.
"""
__version__ = "0.1.0"
