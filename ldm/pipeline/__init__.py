"""The whole pipeline from one TOML config: reference generation -> training -> evaluation."""
