# The library's sources, listed (not globbed): adding a file is a decision
# someone makes here. Shared by host/CMakeLists.txt and the standalone
# libFuzzer build (tests/fuzz/CMakeLists.txt).
set(DP_LIB_SOURCE_NAMES
  bigmem.c config.c config_job.c config_names.c config_problems.c config_source.c ctx.c dag.c duration.c executor.c host_api.c
  isolate.c isolate_warm.c isolate_wire.c isolate_zygote.c job.c jsonw.c listen.c params.c park.c plugin_job.c plugin_load.c plugin_registry.c
  plan.c plugin_swap.c plugin_watch.c pool.c prio.c queue.c readiness.c record.c render.c result.c reuse.c rules.c run.c
  run_end.c snapshot.c store.c strarena.c text.c ticks.c util.c)
# Of those, what the job runner (runner/runner.c) links, and nothing of the
# engine: the isolation wire format, params and their getters (the host
# API's getter entries), durations (a getter parses them), util's helpers.
set(DP_RUNNER_SUPPORT_SOURCE_NAMES isolate_wire.c params.c duration.c util.c)
set(DP_CLI_SOURCE_NAMES
  common.c console.c graph.c graph_svg.c http_server.c main.c metrics.c plan.c plugins.c run.c service.c
  service_notify.c signals.c status_page.c trace.c validate.c watch.c
  history.c mark.c show.c state.c state_cache.c state_ends.c state_hash.c state_lock.c state_query.c state_run.c state_schema.c)
