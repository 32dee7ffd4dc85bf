# What the tests change in the README's shell blocks before running them (hack/readme-block.sh).
# Each line says why; anything not listed here runs exactly as a user types it.
# The language packs' volume (README, Languages): a volume of the user's own by that name is
# left alone.
s/readocr-langs\b/readocr-langs-readme-test/g
# kubectl port-forward's local port (README, On minikube, step by step): 4000 may be taken on a
# test machine (make run); the test picks a free one.
s/\blocalhost:4000\b/localhost:${READOCR_TEST_PORT}/g
s/ 4000:4000 / ${READOCR_TEST_PORT}:4000 /
# pulumi up asks for a confirmation on a terminal; a test has none (README, With Pulumi).
s/^pulumi up /pulumi up --yes /
# The playbook's variables for the test's host (hack/ansible-e2e.sh; ansible/README.md): the none
# driver, this machine's guards against downloads, the local server of kubectl and minikube.
s/^ansible-playbook site\.yml /ansible-playbook site.yml -e "@${READOCR_TEST_ANSIBLE_VARS}" /
