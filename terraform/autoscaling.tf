# Application Auto Scaling owns each service's desired count. The scalable
# targets always exist: without autoscaling min = max = the fixed count, so a
# change of api_min_count / worker_min_count is applied through them (the ECS
# services ignore desired_count after creation). With autoscaling, target
# tracking policies move the count between min and max.

resource "aws_appautoscaling_target" "api" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.api.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = local.api_min_count
  max_capacity       = local.api_max_count
}

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.worker.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = local.worker_min_count
  max_capacity       = local.worker_max_count
}

resource "aws_appautoscaling_policy" "api_cpu" {
  count = local.autoscaling ? 1 : 0

  name               = "${local.name}-api-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }

    target_value       = var.api_cpu_target_percent
    scale_out_cooldown = 60
    scale_in_cooldown  = 300
  }
}

# Scale workers on the queue backlog: the number that actually means "sends are waiting".
resource "aws_appautoscaling_policy" "worker_backlog" {
  count = local.autoscaling ? 1 : 0

  name               = "${local.name}-worker-backlog"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  target_tracking_scaling_policy_configuration {
    customized_metric_specification {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      statistic   = "Average"

      dimensions {
        name  = "QueueName"
        value = aws_sqs_queue.main.name
      }
    }

    target_value       = var.worker_backlog_target
    scale_out_cooldown = 60
    scale_in_cooldown  = 300
  }
}
