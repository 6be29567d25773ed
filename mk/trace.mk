# make trace-check — the execution trace's picture (issue #16), outside
# `make test`: traces the demo, turns the trace into one self-contained
# HTML timeline (tools/trace_html.lua) and renders it in headless Chromium
# (Debian's chromium, installed by tools/deps.sh when missing) to
# $(BUILD)/trace.png. The JSON checks themselves are in spec/trace_spec.lua.

CHROMIUM ?= $(shell command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || echo chromium)
TRACE_DEMO_LIMIT ?= 600000

.PHONY: trace-check
trace-check: rock
	@sh tools/deps.sh chromium
	@eval "$$($(LUAROCKS) --tree $(ROCKS) path)"; \
	  GORO_TRACE=$(BUILD)/trace.json $(LUA) examples/demo.lua $(TRACE_DEMO_LIMIT) >/dev/null && \
	  $(LUA) -e 'local T = dofile "tools/tracejson.lua"; local p = T.check(T.read(arg[1])); \
	    for _, m in ipairs(p) do print(m) end; os.exit(#p == 0)' $(BUILD)/trace.json && \
	  $(LUA) tools/trace_html.lua $(BUILD)/trace.json $(BUILD)/trace.html
	@profile=$$(mktemp -d); \
	  $(CHROMIUM) --headless --no-sandbox --disable-gpu --disable-background-networking \
	    --disable-component-update --disable-sync --no-first-run --user-data-dir=$$profile \
	    --screenshot=$(BUILD)/trace.png --window-size=1400,800 \
	    file://$(CURDIR)/$(BUILD)/trace.html >$(BUILD)/chromium.log 2>&1; rc=$$?; \
	  rm -rf $$profile; \
	  if [ $$rc -ne 0 ] || [ ! -s $(BUILD)/trace.png ]; then \
	    cat $(BUILD)/chromium.log; echo "trace-check: chromium could not render $(BUILD)/trace.html" >&2; exit 1; fi
	@echo "trace-check: $(BUILD)/trace.html rendered to $(BUILD)/trace.png"
