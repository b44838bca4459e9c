"""``python -m site_agent``."""

from site_agent.cli import main

if __name__ == "__main__":  # the relay process (spawn) must not run the CLI again
    raise SystemExit(main())
