"""CLI commands: placeholder until this stage lands; registers commands on bayescpec.cli.app."""
