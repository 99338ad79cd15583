#!/usr/bin/env bash
# Keeps this Elasticsearch node set up for the lab for as long as the node runs: the
# `setup` sidecar container of the Elasticsearch pod (components/observability).
#
# The node keeps its data (the security index included) on an emptyDir, so every new
# Elasticsearch pod starts empty: no kibana_system password, no log shipper user. A
# one-shot Job ran once and never again, so after any restart of the pod Kibana could not
# log in and every log sidecar got 401. This loop lives and dies with the node instead:
# each round it checks that the shipper's and Kibana's credentials really authenticate
# and (re)creates what is missing, then makes sure Kibana's data view exists. Every call
# is a PUT/POST that may repeat; a round with nothing missing changes nothing.
#
# Environment: ELASTIC_PASSWORD, KIBANA_SYSTEM_PASSWORD, ES_USERNAME, ES_PASSWORD (the
# Secrets); ES_URL (http://127.0.0.1:9200, the node in this pod), KIBANA_URL
# (http://kibana:5601), SETUP_INTERVAL_SECONDS (30: between rounds once set up),
# SETUP_RETRY_SECONDS (2: between rounds until then),
# SETUP_HEARTBEAT_FILE (/var/run/setup/heartbeat: the liveness probe checks it is fresh).
set -euo pipefail

es=${ES_URL:-http://127.0.0.1:9200}
kibana=${KIBANA_URL:-http://kibana:5601}
interval=${SETUP_INTERVAL_SECONDS:-30}
retry=${SETUP_RETRY_SECONDS:-2}
heartbeat=${SETUP_HEARTBEAT_FILE:-/var/run/setup/heartbeat}
auth="elastic:${ELASTIC_PASSWORD}"
json=(-H "Content-Type: application/json")
curl_opts=(-sS --max-time 10)

log() { printf '%s setup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

# Sleep, but leave at once on SIGTERM (the pod stops): a sidecar must not hold up shutdown.
trap 'log "stopping"; exit 0' TERM INT
pause() {
    sleep "$1" &
    wait $! || true
}

authenticates() { # USER PASSWORD: the node says who that is (HTTP 200)
    curl "${curl_opts[@]}" -f -o /dev/null -u "$1:$2" "$es/_security/_authenticate" 2>/dev/null
}

es_answers() {
    curl "${curl_opts[@]}" -f -o /dev/null -u "$auth" "$es/_cluster/health?wait_for_status=yellow&timeout=5s" 2>/dev/null
}

# Every call checked on its own: called from an `if`, the function runs without `set -e`.
set_up_security() {
    log "setting the kibana_system password"
    curl "${curl_opts[@]}" -f -o /dev/null -u "$auth" "${json[@]}" -X POST "$es/_security/user/kibana_system/_password" \
        -d "{\"password\": \"${KIBANA_SYSTEM_PASSWORD}\"}" || return 1
    # logs-app-YYYY.MM.DD matches the built-in logs-*-* template: each day is a data
    # stream. create_doc allows exactly the op_type the sidecar sends (create, the only
    # one data streams take); auto_configure lets a day's first write create its stream
    # from the template. No read, no index or template management.
    log "creating role sidecar-lab-shipper and user ${ES_USERNAME} for the log sidecars"
    curl "${curl_opts[@]}" -f -o /dev/null -u "$auth" "${json[@]}" -X PUT "$es/_security/role/sidecar-lab-shipper" -d '{
        "cluster": [],
        "indices": [{
            "names": ["logs-app-*"],
            "privileges": ["create_doc", "auto_configure"]
        }]
    }' || return 1
    curl "${curl_opts[@]}" -f -o /dev/null -u "$auth" "${json[@]}" -X PUT "$es/_security/user/${ES_USERNAME}" \
        -d "{\"password\": \"${ES_PASSWORD}\", \"roles\": [\"sidecar-lab-shipper\"]}" || return 1
}

ensure_data_view() {
    local status
    curl "${curl_opts[@]}" -f -o /dev/null "$kibana/api/status" 2>/dev/null || return 0 # Kibana not up (yet)
    status=$(curl "${curl_opts[@]}" -o /dev/null -w '%{http_code}' -u "$auth" -H "kbn-xsrf: true" \
        "$kibana/api/data_views/data_view/logs-app")
    [[ $status == 200 ]] && return 0
    log "creating the Kibana data view logs-app* (every day's logs-app-YYYY.MM.DD data stream)"
    status=$(curl "${curl_opts[@]}" -o /dev/null -w '%{http_code}' -u "$auth" "${json[@]}" -H "kbn-xsrf: true" \
        -X POST "$kibana/api/data_views/data_view" \
        -d '{"data_view": {"id": "logs-app", "title": "logs-app*", "name": "App logs (logs-app-* data streams)", "timeFieldName": "@timestamp"}}')
    case "$status" in
        200) log "data view created" ;;
        400 | 409) log "data view already exists" ;;
        *) log "Kibana answered HTTP $status to the data view; retrying next round" ;;
    esac
}

set_up=false
while true; do
    touch "$heartbeat"
    if ! es_answers; then
        log "waiting for Elasticsearch at $es"
    elif ! authenticates "$ES_USERNAME" "$ES_PASSWORD" || ! authenticates kibana_system "$KIBANA_SYSTEM_PASSWORD"; then
        $set_up && log "the lab's users are gone (the node lost its data): setting up again"
        if set_up_security; then
            set_up=true
            log "done: ${ES_USERNAME} and kibana_system authenticate"
        else
            log "setup failed; retrying"
        fi
    else
        set_up=true
        ensure_data_view || log "data view check failed; retrying next round"
    fi
    if $set_up; then pause "$interval"; else pause "$retry"; fi
done
