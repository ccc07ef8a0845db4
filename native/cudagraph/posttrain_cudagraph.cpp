// CUDA graphs for PostTrain's decode loop and captured training step: a C ABI over libtorch's at::cuda::CUDAGraph,
// c10's current-stream switch, CUDA events and the CUDA caching allocator's statistics (peak allocated bytes, the measure
// torch.cuda.max_memory_allocated() reports), for P/Invoke from C# (TorchSharp wraps none of these). Built against the libtorch the process loads
// (scripts/build-cudagraph.sh; the pip torch's headers and libraries). Every call returns 0 on success or -1 with the
// libtorch error text in ptcg_last_error(); no C++ exception crosses the ABI.
//
// Use from one thread: enter a side stream (capture needs a non-default stream; warm-up runs there too), capture,
// replay any number of times, leave the side stream. Current streams are thread-local in libtorch, so the TorchSharp
// ops of the thread that entered run on the side stream; ops of other threads do not.
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>

#include <exception>
#include <string>

namespace {
thread_local std::string last_error;

struct SideStream {
  c10::cuda::CUDAStream previous;
  c10::cuda::CUDAStream side;
};

template <typename F>
int guarded(F&& body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return -1;
}
}  // namespace

extern "C" {

const char* ptcg_last_error() { return last_error.c_str(); }

// Makes a pooled side stream of `device` current for this thread, ordered after the work already queued on the
// current stream. *handle is passed to ptcg_leave_side_stream.
int ptcg_enter_side_stream(int device, void** handle) {
  return guarded([&] {
    auto previous = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device));
    auto side = c10::cuda::getStreamFromPool(false, static_cast<c10::DeviceIndex>(device));
    at::cuda::CUDAEvent ready;
    ready.record(previous);
    ready.block(side);
    c10::cuda::setCurrentCUDAStream(side);
    *handle = new SideStream{previous, side};
  });
}

// Restores the stream that was current before ptcg_enter_side_stream, ordered after the side stream's work.
int ptcg_leave_side_stream(void* handle) {
  return guarded([&] {
    auto* s = static_cast<SideStream*>(handle);
    at::cuda::CUDAEvent done;
    done.record(s->side);
    done.block(s->previous);
    c10::cuda::setCurrentCUDAStream(s->previous);
    delete s;
  });
}

// Work on a side stream that the current stream does not wait for (e.g. copying the weights to the host while the
// next step's forward runs): ptcg_async_begin makes a pooled side stream current for this thread, ordered after the
// work already queued on the current stream; ptcg_async_end records an event on the side stream, restores the
// previous stream without ordering it after the side stream and returns the event. Later work that must follow the
// side stream's waits for the event: ptcg_event_block (the current stream, on the device) or ptcg_event_synchronize
// (the calling host thread, any thread). ptcg_event_delete frees it.
int ptcg_async_begin(int device, void** handle) { return ptcg_enter_side_stream(device, handle); }

int ptcg_async_end(void* handle, void** event) {
  return guarded([&] {
    auto* s = static_cast<SideStream*>(handle);
    auto* done = new at::cuda::CUDAEvent();
    done->record(s->side);
    c10::cuda::setCurrentCUDAStream(s->previous);
    delete s;
    *event = done;
  });
}

int ptcg_event_block(void* event) {
  return guarded([&] {
    auto* e = static_cast<at::cuda::CUDAEvent*>(event);
    e->block(c10::cuda::getCurrentCUDAStream(e->device_index()));
  });
}

int ptcg_event_synchronize(void* event) {
  return guarded([&] { static_cast<at::cuda::CUDAEvent*>(event)->synchronize(); });
}

int ptcg_event_delete(void* event) {
  return guarded([&] { delete static_cast<at::cuda::CUDAEvent*>(event); });
}

int ptcg_graph_new(void** graph) {
  return guarded([&] { *graph = new at::cuda::CUDAGraph(); });
}

// Starts capturing the current (side) stream's work into `graph`, with a private memory pool. Thread-local capture
// mode: CUDA calls of other threads (e.g. .NET finalizers freeing tensors) are not captured and do not break it.
int ptcg_capture_begin(void* graph) {
  return guarded([&] {
    static_cast<at::cuda::CUDAGraph*>(graph)->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
  });
}

// Ends the capture and instantiates the graph.
int ptcg_capture_end(void* graph) {
  return guarded([&] { static_cast<at::cuda::CUDAGraph*>(graph)->capture_end(); });
}

// Launches the captured work on the current stream.
int ptcg_replay(void* graph) {
  return guarded([&] { static_cast<at::cuda::CUDAGraph*>(graph)->replay(); });
}

// Frees the graph and (once no tensor allocated during capture is alive) its memory pool.
int ptcg_graph_delete(void* graph) {
  return guarded([&] { delete static_cast<at::cuda::CUDAGraph*>(graph); });
}

// The caching allocator's bytes of `device` (all pools, CUDA-graph pools included): currently allocated, the peak
// allocated since the last ptcg_memory_reset_peak (torch.cuda.max_memory_allocated), and reserved from the driver.
int ptcg_memory_stats(int device, int64_t* allocated, int64_t* peak, int64_t* reserved) {
  return guarded([&] {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    const size_t agg = 0;   // StatType::AGGREGATE (its namespace moved between libtorch versions; the value did not)
    *allocated = stats.allocated_bytes[agg].current;
    *peak = stats.allocated_bytes[agg].peak;
    *reserved = stats.reserved_bytes[agg].current;
  });
}

// Resets the peak statistics of `device` to the current values (torch.cuda.reset_peak_memory_stats).
int ptcg_memory_reset_peak(int device) {
  return guarded([&] { c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device)); });
}
}
