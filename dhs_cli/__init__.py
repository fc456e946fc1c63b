"""The `dhs` command line. Each `*_cmd` module registers one subcommand group."""
