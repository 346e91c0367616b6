"""CTI bridge: reads caller ID from phone hardware and PBXs and publishes call events.

The bridge never imports ``app``; the application consumes :mod:`cti_bridge.events`.
"""
