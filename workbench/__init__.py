"""The Streamlit workbench: presentation only, over :mod:`core`."""
