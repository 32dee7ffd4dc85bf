# What the tests change in the README's shell blocks before running them (hack/readme-block.sh).
# Each line says why; anything not listed here runs exactly as a user types it.
# The language packs' volume (README, Languages): a volume of the user's own by that name is
# left alone.
s/readocr-langs\b/readocr-langs-readme-test/g
