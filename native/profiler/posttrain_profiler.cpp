// PostTrain's kernel profiler: libtorch's own Kineto profiler (what torch.profiler drives from Python) started and
// stopped from .NET, so a PostTrain step and a PyTorch step are traced by the same tool. The trace is Chrome JSON
// (the file torch.profiler's export_chrome_trace writes); benchmarks/hf/kernel_summary.py sums its kernels by name.
// Built on the GPU machine by scripts/gpu/build-profiler.sh against the libtorch PostTrain runs on; optional: without
// it, bench-train --profile says so and measures as usual.
#include <torch/csrc/autograd/profiler_kineto.h>

#include <cstring>
#include <exception>
#include <set>
#include <string>

namespace {
thread_local std::string last_error;

template <typename F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return 1;
}

namespace prof = torch::autograd::profiler;
namespace impl = torch::profiler::impl;

const std::set<impl::ActivityType>& activities() {
  // CUDA only: kernels, copies and memsets with their device times (CUPTI reports the kernels of CUDA graph replays
  // node by node); host-side operator events are not needed for a kernel table and would dwarf the trace.
  static const std::set<impl::ActivityType> a{impl::ActivityType::CUDA};
  return a;
}
}  // namespace

extern "C" {

// Starts tracing CUDA activity for the whole process; 0 on success.
int ptpf_start() {
  return guarded([] {
    impl::ProfilerConfig config(impl::ProfilerState::KINETO);
    prof::prepareProfiler(config, activities());
    prof::enableProfiler(config, activities());
  });
}

// Stops tracing and writes the Chrome trace to path; 0 on success.
int ptpf_stop(const char* path) {
  return guarded([&] {
    auto result = prof::disableProfiler();
    if (!result) throw std::runtime_error("the profiler returned no result (was it started?)");
    result->save(std::string(path));
  });
}

// The message of the last failed call on this thread ("" if none).
const char* ptpf_last_error() { return last_error.c_str(); }
}
