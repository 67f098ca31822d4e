"""One decoder per device format, behind the Decoder protocol in base.py."""
