# Fails if the job runner (RUNNER) holds any of the engine: it links only
# daggerpool_runner_support (the isolation wire format, params and their
# getters, durations, util), never all of libdaggerpool. Linked against the
# whole library it carried the scheduler, the graph, the store, results and
# the host side of isolation, none of which it calls.
execute_process(COMMAND ${NM} --defined-only ${RUNNER}
  OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm --defined-only ${RUNNER} failed (${rc})")
endif()
if(NOT out MATCHES "[ \n][Tt] main\n")
  message(FATAL_ERROR "${RUNNER}: nm lists no main; is it stripped? The check needs its symbols:\n${out}")
endif()
# The engine's files by their symbols: dag.c, pool.c, job.c, ctx.c,
# readiness.c, result.c, store.c, ticks.c, strarena.c, config.c, render.c,
# the plugin registry and watcher, and the host side of isolate.c.
set(engine "dp_graph_|dp__graph_|dp_run_opts_|dp__run_|dp_job_|dp__job_|dp_ctx_|dp__ctx_|dp_poll|dp__poll|dp_probe"
  "|dp_result_|dp__result_|dp__slotbuf_|dp_store_|dp__store_|dp__tick|dp__strarena_|dp_workflow_|dp__config_"
  "|dp__render_|dp_plugins_|dp__plugins_|dp__pversion_|dp__pentry_|dp_reloader_|dp__isolate_start"
  "|dp__isolate_call|dp__isolate_end|dp__isolate_kill_all")
string(CONCAT engine ${engine})
string(REGEX MATCHALL "[ \t][A-Za-z] (${engine})[A-Za-z0-9_]*" found "${out}")
# dp__isolate_runner (finding the runner) is the host's; the runner's
# signal set, dp__isolate_runner_sigset, is the wire's.
string(REGEX MATCHALL "[ \t][A-Za-z] dp__isolate_runner\n" runner_lookup "${out}")
list(APPEND found ${runner_lookup})
if(found)
  list(REMOVE_DUPLICATES found)
  list(LENGTH found n)
  string(REPLACE ";" "\n" found "${found}")
  message(FATAL_ERROR "${RUNNER} holds ${n} symbol(s) of the engine; link it against "
    "daggerpool_runner_support alone (host/CMakeLists.txt):\n${found}")
endif()
message(STATUS "${RUNNER}: none of the engine")
