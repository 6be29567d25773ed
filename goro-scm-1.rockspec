rockspec_format = "3.0"
package = "goro"
version = "scm-1"
source = {
  url = "git+https://example.invalid/goro.git",
}
description = {
  summary = "Go's concurrency model for Lua 5.4: goroutines on every core, channels, select",
  detailed = [[
goro runs each goroutine as a coroutine in its own lua_State on a C
implementation of Go's G-M-P scheduler, so Lua code runs in parallel on
every core. Channels, select, timers, waitgroups, mutexes, context,
errgroup, worker pools and pipelines, with Go's semantics.
]],
  homepage = "https://example.invalid/goro",
  license = "MIT",
  maintainer = "the goro authors",
  labels = { "concurrency", "goroutines", "channels", "threads", "parallel" },
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  FFI = { library = "ffi" },
}
build = {
  type = "make",
  build_target = "module",
  build_variables = {
    CFLAGS = "$(CFLAGS) -I$(FFI_INCDIR)",
    FFI_LIB = "-L$(FFI_LIBDIR) -lffi",
    LUA_INC = "-I$(LUA_INCDIR)",
    LUA = "$(LUA)",
    WERROR = "",
  },
  install_target = "install",
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
  },
}
