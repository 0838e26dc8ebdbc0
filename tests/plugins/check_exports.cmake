# Fails unless PLUGIN's dynamic symbol table defines exactly one symbol,
# dp_plugin_entry_v1 (hidden visibility + the version script at work).
execute_process(COMMAND ${NM} -D --defined-only ${PLUGIN}
  OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm -D --defined-only ${PLUGIN} failed (${rc})")
endif()
string(STRIP "${out}" out)
string(REPLACE "\n" ";" lines "${out}")
list(LENGTH lines n)
if(NOT n EQUAL 1 OR NOT out MATCHES " T dp_plugin_entry_v1$")
  message(FATAL_ERROR "${PLUGIN} must export exactly dp_plugin_entry_v1, but exports ${n} symbol(s):\n${out}")
endif()
message(STATUS "${PLUGIN}: exports only dp_plugin_entry_v1")
