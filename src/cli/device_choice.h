// What `--device` asks for and what the program can give. The model runs on the CPU backend
// only: the CUDA ops exist (src/backend/cuda/), but the model still walks activations on the
// host (issue 14), so asking for "cuda" gets one line saying why the CPU is used.
#pragma once

#include <string>

namespace causeway {

// The line to print when `device` ("cpu" or "cuda") cannot be used as asked, without the
// "causeway: " prefix; empty when it is used as asked.
std::string device_fallback_note(const std::string& device);

}  // namespace causeway
