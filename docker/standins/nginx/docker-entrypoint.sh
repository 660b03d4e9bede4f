#!/bin/sh
# As the official image's 20-envsubst-on-templates.sh: every
# /etc/nginx/templates/X.template becomes /etc/nginx/conf.d/X, with only the
# variables defined in the environment substituted (nginx's own $host stays).
set -eu
if [ -d /etc/nginx/templates ]; then
  # shellcheck disable=SC2016,SC2046 # literal ${NAME} for envsubst, one per variable
  defined=$(printf '${%s} ' $(env | cut -d= -f1))
  for template in /etc/nginx/templates/*.template; do
    [ -e "$template" ] || continue
    out="/etc/nginx/conf.d/$(basename "$template" .template)"
    envsubst "$defined" <"$template" >"$out"
    echo "docker-entrypoint: rendered $template to $out"
  done
fi
exec "$@"
