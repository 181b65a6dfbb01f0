"""The commands behind `medins`, one module per job; `medins.cli` registers them."""
