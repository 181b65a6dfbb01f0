"""medins: Chinese public medical-insurance (医保) policies as executable, reviewable YAML."""

__version__ = "0.1.0"
