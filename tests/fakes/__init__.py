"""Stand-ins for cloud services the tests cannot reach (named as stand-ins wherever they are used)."""
