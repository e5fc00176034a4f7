"""The daemon: schedule, signals, systemd notification, metrics, and the loop tying them."""
