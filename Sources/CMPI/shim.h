// MPI's handles are macros Swift cannot import (in Open MPI, casts of the addresses of globals):
// these functions hand them over.
#include <mpi.h>

static inline MPI_Comm ocelli_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype ocelli_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype ocelli_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Op ocelli_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op ocelli_mpi_max(void) { return MPI_MAX; }
static inline void *ocelli_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Request ocelli_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *ocelli_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler ocelli_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Datatype ocelli_mpi_int(void) { return MPI_INT; }
