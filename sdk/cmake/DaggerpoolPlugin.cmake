# DaggerpoolPlugin.cmake - dp_add_plugin(): build a daggerpool job plugin.
#
#   dp_add_plugin(NAME [NO_INSTALL] [OUTPUT_DIR dir] SOURCES...)
#
# Makes NAME.so, a MODULE library that links only daggerpool::sdk (the
# header: a plugin never links against the host), built with hidden
# visibility and a version script, so that the one dynamic symbol it exports
# is dp_plugin_entry_v1. The file goes to ${DP_PLUGIN_OUTPUT_DIR} (default:
# the current binary dir) and installs to ${DP_PLUGIN_INSTALL_DIR} (default:
# ${CMAKE_INSTALL_LIBDIR}/daggerpool/plugins), where the daggerpool command
# looks beside its bin/.
#
# Used in the daggerpool tree for the first-party plugins, and by third
# parties through find_package(daggerpool), exactly the same way.
include_guard(GLOBAL)
include(GNUInstallDirs)

if(NOT DEFINED DP_PLUGIN_INSTALL_DIR)
  set(DP_PLUGIN_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/daggerpool/plugins)
endif()

# The version script: only the entry symbol is global. Generated, so that the
# installed package needs no extra file beside this one.
set(_DP_PLUGIN_MAP ${CMAKE_BINARY_DIR}/daggerpool-plugin.map CACHE INTERNAL "daggerpool plugin version script")
file(WRITE ${_DP_PLUGIN_MAP}.tmp "{\n  global: dp_plugin_entry_v1;\n  local: *;\n};\n")
file(COPY_FILE ${_DP_PLUGIN_MAP}.tmp ${_DP_PLUGIN_MAP} ONLY_IF_DIFFERENT)
file(REMOVE ${_DP_PLUGIN_MAP}.tmp)

function(dp_add_plugin name)
  # NO_INSTALL: a plugin for tests only. OUTPUT_DIR: where the .so goes
  # (default ${DP_PLUGIN_OUTPUT_DIR}, else the current binary dir).
  cmake_parse_arguments(PARSE_ARGV 1 arg "NO_INSTALL" "OUTPUT_DIR" "")
  set(sources ${arg_UNPARSED_ARGUMENTS})
  if(NOT sources)
    message(FATAL_ERROR "dp_add_plugin(${name}): no sources given; usage: dp_add_plugin(NAME [NO_INSTALL] [OUTPUT_DIR dir] SOURCES...)")
  endif()
  if(NOT TARGET daggerpool::sdk)
    message(FATAL_ERROR "dp_add_plugin(${name}): target daggerpool::sdk is missing; call find_package(daggerpool) first")
  endif()
  add_library(${name} MODULE ${sources})
  target_link_libraries(${name} PRIVATE daggerpool::sdk)
  set(out ${CMAKE_CURRENT_BINARY_DIR})
  if(arg_OUTPUT_DIR)
    set(out ${arg_OUTPUT_DIR})
  elseif(DP_PLUGIN_OUTPUT_DIR)
    set(out ${DP_PLUGIN_OUTPUT_DIR})
  endif()
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${name}
    LIBRARY_OUTPUT_DIRECTORY ${out}
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS ${_DP_PLUGIN_MAP})
  target_link_options(${name} PRIVATE "LINKER:--version-script=${_DP_PLUGIN_MAP}")
  if(NOT arg_NO_INSTALL)
    install(TARGETS ${name} LIBRARY DESTINATION ${DP_PLUGIN_INSTALL_DIR})
  endif()
endfunction()
