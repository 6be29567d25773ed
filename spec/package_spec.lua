-- The package: LICENSE, CHANGELOG.md, go._VERSION and the rockspecs agree
-- with each other, both rockspecs pass `luarocks lint`, and the README
-- links the reference, the license and the changelog.
local lu = require "luaunit"
local go = require "goro"

local ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]*$")) or "."

local function slurp(path)
  local f = assert(io.open(ROOT .. "/" .. path, "rb"), "missing " .. path)
  local s = f:read("a")
  f:close()
  return s
end

-- A rockspec's fields (rockspecs are Lua assignments).
local function rockspec(path)
  local env = {}
  assert(load(slurp(path), "@" .. path, "t", env))()
  return env
end

local function released()
  local p = io.popen("ls " .. ROOT .. "/rockspecs/goro-*.rockspec 2>/dev/null")
  local list = {}
  for line in p:lines() do list[#list + 1] = line:match("(rockspecs/[^/]+)$") end
  p:close()
  return list
end

local SCM = "goro-scm-1.rockspec"

function test_license_is_the_mit_license_the_rockspecs_name()
  local text = slurp("LICENSE")
  lu.assertStrContains(text, "MIT License")
  lu.assertStrContains(text, "Permission is hereby granted, free of charge")
  lu.assertEquals(rockspec(SCM).description.license, "MIT")
end

function test_version_changelog_and_newest_rockspec_agree()
  lu.assertEquals(type(go._VERSION), "string")
  lu.assertStrMatches(go._VERSION, "%d+%.%d+%.%d+")
  local log = slurp("CHANGELOG.md")
  local newest, date = log:match("\n## %[(%d+%.%d+%.%d+)%] %- (%d%d%d%d%-%d%d%-%d%d)\n")
  lu.assertEquals(newest, go._VERSION, "CHANGELOG.md's newest release is go._VERSION")
  lu.assertNotNil(date)
  lu.assertStrContains(log, "\n## [Unreleased]\n")
  local specs = released()
  lu.assertTrue(#specs >= 1, "no rockspecs/goro-*.rockspec")
  local found
  for _, path in ipairs(specs) do
    local r = rockspec(path)
    lu.assertEquals(path, "rockspecs/goro-" .. r.version .. ".rockspec")
    lu.assertStrContains(log, "## [" .. r.version:match("^(.-)%-%d+$") .. "]", false,
      path .. " has no CHANGELOG.md entry")
    if r.version:match("^(.-)%-%d+$") == go._VERSION then found = r end
  end
  lu.assertNotNil(found, "no rockspec for go._VERSION " .. go._VERSION)
  lu.assertEquals(found.source.tag, "v" .. go._VERSION)
end

function test_released_and_scm_rockspecs_build_the_same_way()
  local scm = rockspec(SCM)
  for _, path in ipairs(released()) do
    local r = rockspec(path)
    lu.assertEquals(r.package, "goro")
    lu.assertEquals(r.dependencies, scm.dependencies)
    lu.assertEquals(r.external_dependencies, scm.external_dependencies)
    lu.assertEquals(r.build, scm.build, path .. " builds like " .. SCM)
    lu.assertEquals(r.description, scm.description)
  end
end

function test_rockspecs_pin_lua_54_and_pass_the_ffi_paths_to_make()
  for _, path in ipairs{SCM, table.unpack(released())} do
    local r = rockspec(path)
    lu.assertEquals(r.dependencies, {"lua >= 5.4, < 5.5"}, path)
    lu.assertStrMatches(r.description.homepage, "https?://.+", nil, nil, path)
    lu.assertEquals(r.external_dependencies.FFI, {library = "ffi"}, path)
    lu.assertStrContains(r.build.build_variables.CFLAGS, "-I$(FFI_INCDIR)", false, path)
    lu.assertStrContains(r.build.build_variables.FFI_LIB, "-L$(FFI_LIBDIR)", false, path)
  end
end

function test_luarocks_lint_passes_on_every_rockspec()
  lu.skipIf(os.execute("command -v luarocks >/dev/null 2>&1") ~= true, "luarocks is not installed")
  -- luarocks runs gcc, grep...: valgrind would check their memory, not ours
  lu.skipIf(os.getenv("GORO_VALGRIND"), "luarocks' children are not ours to leak-check")
  for _, path in ipairs{SCM, table.unpack(released())} do
    local p = io.popen("cd " .. ROOT .. " && luarocks --lua-version 5.4 lint " .. path .. " 2>&1")
    local out = p:read("a")
    local ok = p:close()
    lu.assertTrue(ok, "luarocks lint " .. path .. ":\n" .. out)
  end
end

function test_readme_links_the_reference_license_and_changelog()
  local readme = slurp("README.md")
  for _, target in ipairs{"doc/API.md", "LICENSE", "CHANGELOG.md"} do
    lu.assertTrue(readme:find("](" .. target .. ")", 1, true) ~= nil, "README links " .. target)
    slurp(target)
  end
end

os.exit(lu.LuaUnit.run())
