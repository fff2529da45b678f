// --device cuda: says in one line why the CPU runs the job (no CUDA in this build, no GPU
// here, or a model not yet wired to the CUDA backend).
#include "cli/device_choice.h"

#include "backend/backend.h"

namespace causeway {

std::string device_fallback_note(const std::string& device) {
  if (device != "cuda") return "";
#ifdef CAUSEWAY_HAVE_CUDA
  std::string why;
  if (!cuda_device_available(&why)) return "--device cuda: no GPU (" + why + "); using the CPU";
  return "--device cuda: the model does not run on the CUDA backend yet; using the CPU";
#else
  return "--device cuda: this build has no CUDA backend (configure with -DCAUSEWAY_CUDA=ON); "
         "using the CPU";
#endif
}

}  // namespace causeway
