#!/usr/bin/env bash
# Start the bot locally: PostgreSQL, Redis and S3 on loopback, then aishad
# with every actor (`--profile dev`, mode `all`). The token and API keys come
# from the environment or from .env (see .env.example). Ctrl-C stops aishad
# (draining in-flight work); `scripts/services.sh stop` stops the services.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/services.sh start
set -a
# Keys and token from .env; the connection settings of the local services win.
# shellcheck disable=SC1091
if [ -f .env ]; then . ./.env; fi
# shellcheck disable=SC1091
. .local/services.env
set +a
if [ -z "${TELEGRAM_BOT_TOKEN:-${TELEGRAM_TOKEN:-${AISHA_TELEGRAM__TOKEN:-}}}" ]; then
  echo "dev: set TELEGRAM_BOT_TOKEN (in the environment or in .env; see .env.example)" >&2
  exit 78
fi
exec cargo run --bin aishad -- --profile dev --mode all run "$@"
