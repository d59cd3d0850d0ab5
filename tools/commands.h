// The q8 program's commands that live in their own files (main() in q8_main.cpp dispatches).
#pragma once

namespace q8cli {

// q8 analyze: per-layer precision and time of int8 against fp32 (throws UsageError / q8::Error).
int cmd_analyze(int argc, char** argv);
extern const char* const kAnalyzeHelp;

}  // namespace q8cli
