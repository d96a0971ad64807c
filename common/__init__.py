"""What every Convene package shares: the frozen Config, typed errors and their wire form, JSON reading."""
