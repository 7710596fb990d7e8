# python.cmake - what the Python package (pyproject.toml, scikit-build-core)
# installs: the shared libraries alone, into the package directory attn/
# under the install prefix (the wheel's platlib), where python/attn/_lib.py
# loads them. Each finds the others through its RUNPATH $ORIGIN. Headers,
# static libraries, pkg-config files, the CMake package and the program are
# for C users (cmake/install.cmake) and stay out of the wheel.
set(ATTN_PYTHON_LIBRARIES attn_shared attn_formats_shared attn_text_shared attn_explain_shared)
foreach(t attn_nn_shared attn_viz_shared attn_task_shared)
  if(TARGET ${t})
    list(APPEND ATTN_PYTHON_LIBRARIES ${t})
  endif()
endforeach()
install(TARGETS ${ATTN_PYTHON_LIBRARIES} LIBRARY DESTINATION attn RUNTIME DESTINATION attn)
