# What the tests change in the README's shell blocks before running them (hack/readme-block.sh).
# Each line says why; anything not listed here runs exactly as a user types it.
